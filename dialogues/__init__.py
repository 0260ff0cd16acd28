"""The Rasa 3.6 project and its custom actions (served by rasa-sdk in the app env)."""
