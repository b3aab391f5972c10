"""Where pretrained models come from: the offline zoo, local folders, hub ids."""
