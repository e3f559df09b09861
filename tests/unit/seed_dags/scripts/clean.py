print("clean: ok")  # stands in for the seed's script
