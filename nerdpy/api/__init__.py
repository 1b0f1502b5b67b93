"""The Docker Engine API over a unix socket (`nerdpy system service`): a client of the engine, like
the CLI commands, behind HTTP (aiohttp). It holds no state of its own beyond exec sessions and
attach requests in flight: every request goes through the engine functions the CLI calls, and a
container created here is an ordinary nerdpy container with its own monitor.

server.py owns the app, the listening socket, socket activation, the idle timer and the error
mapping; one module per resource group (containers, images, networks, volumes, system, exec)
registers its routes; convert.py maps API JSON to engine objects and back; streams.py holds the
framing and the hijacked (upgraded) connections.
"""
