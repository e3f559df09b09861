print("check_nulls: ok")  # stands in for the seed's script
