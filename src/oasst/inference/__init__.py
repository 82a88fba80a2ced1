"""The inference API: chats, streamed assistant replies and the model workers that write them."""
