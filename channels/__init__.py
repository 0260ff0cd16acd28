"""Channel adapters: Twilio SMS, SMTP email, push and web chat, behind one interface."""
