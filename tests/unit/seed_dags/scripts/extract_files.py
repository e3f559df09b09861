print("extract_files: ok")  # stands in for the seed's script
