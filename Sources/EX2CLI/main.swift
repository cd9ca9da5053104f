print("ex2")
