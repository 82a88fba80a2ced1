"""Local accounts: usernames, scrypt password hashes and roles of people who sign in to oasst itself."""
