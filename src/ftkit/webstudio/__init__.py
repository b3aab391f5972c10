"""`ftkit studio`: the local web app (app.py) over the run folders under --runs."""
