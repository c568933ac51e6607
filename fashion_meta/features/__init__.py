"""Feature tables of the lake: transforms from bronze to features/*."""
