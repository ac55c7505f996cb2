"""Widgets of the workbench: thin views over the plain modules that compute what they show."""
