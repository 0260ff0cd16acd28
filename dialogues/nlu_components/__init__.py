"""Custom Rasa NLU components (loaded by Rasa from dialogues/, its working directory)."""
