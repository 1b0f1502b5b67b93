"""Images: names and tags, an image's documents, history, commit, import, save and load."""
