print("load_cache: ok")  # stands in for the seed's script
