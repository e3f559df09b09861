print("check_duplicates: ok")  # stands in for the seed's script
