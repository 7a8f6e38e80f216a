"""Reports for the network's editors: what each campaign reached, the audience over time."""
