print("load_warehouse: ok")  # stands in for the seed's script
