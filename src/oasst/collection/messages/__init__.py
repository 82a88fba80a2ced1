"""Messages: reading trees and threads, emoji reactions, free labels and reports."""
