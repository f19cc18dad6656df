"""Text-to-motion generators."""
