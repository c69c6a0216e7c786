"""The ``mlops`` command-line front door."""
