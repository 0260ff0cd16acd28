"""arrears core: borrowers, loans, arrears, the transcript, handoff and the web app."""
