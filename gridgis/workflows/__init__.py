"""Multi-step jobs written once (import, …), called by the CLI, the API and the demo."""
