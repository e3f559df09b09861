print("transform_b: ok")  # stands in for the seed's script
