"""Small programs composing the components with non-default args; each runs as a test and is shown in the docs."""
