"""Custom Rasa NLU components for Kate (loaded by Rasa from bot/, in .venv-rasa)."""
