print("extract_api: ok")  # stands in for the seed's script
