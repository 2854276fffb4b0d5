"""Transport only: the loopback server and its WSGI endpoint, which operation a request is, and
AWS error answers. What answers a request (moto, the emulator's own ``services``) and what
watches it (``instruments``) plug into the endpoint; nothing here imports them."""
