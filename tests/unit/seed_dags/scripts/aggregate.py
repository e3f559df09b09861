print("aggregate: ok")  # stands in for the seed's script
