"""`python -m nerdpy` runs the command line."""
from nerdpy.launch import main

main()
