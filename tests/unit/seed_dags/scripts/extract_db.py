print("extract_db: ok")  # stands in for the seed's script
