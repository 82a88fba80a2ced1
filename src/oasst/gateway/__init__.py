"""The course gateway: accounts with hashed keys and token budgets, their users, and budgeted chats
(Parrot-compatible, under /api), answered by the inference workers."""
