"""Audio data: corpus readers → manifest → features (cached) → speaker-independent splits."""
