"""The interface of each plugin slot, one short module per slot."""
