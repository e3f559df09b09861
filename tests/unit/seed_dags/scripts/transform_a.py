print("transform_a: ok")  # stands in for the seed's script
