"""Research experiments that reproduce published results with zofw's components."""
