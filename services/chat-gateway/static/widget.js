// Placeholder: the chat-ui branch replaces this file with the Careline chat widget.
