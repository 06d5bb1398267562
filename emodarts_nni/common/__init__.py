"""What every other folder uses and nothing here depends on: errors, atomic files, validation
rules, the safe YAML loader, the shipped files, number formatting. Light: no torch, no NNI."""
