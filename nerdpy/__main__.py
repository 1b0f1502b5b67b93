"""`python -m nerdpy` runs the command line."""
from nerdpy.cli import main

main()
