"""Model backends behind one abstract class (base.py): fake for tests, openai_http for OpenAI-like servers."""
