"""Workers AI Lab core: UI-free client, emulator, measurement and storage for Cloudflare Workers AI."""

__version__ = "0.1.0"
