"""The editor's side: issue files read into a typed `Issue` (the model is the schema), with every
problem reported at its `file:line`, and new issues scaffolded from the model."""
