"""The steps of a CSV import: `read` the file, `check` each row, `write` batches; `report` what was left out.

`newsletter.audience.importer` runs them in one transaction and is the module to call.
"""
