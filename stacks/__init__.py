"""Stack composition: config model, ``build()``, per-environment config files and the offline synth."""
