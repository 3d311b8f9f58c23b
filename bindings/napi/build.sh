#!/bin/sh
# Builds the Node-API addon build/ohreq.node (and the library it links) with the project's
# Makefile rule: plain cc against /usr/include/node, no node-gyp.
set -e
cd "$(dirname "$0")/../.."
make build/ohreq.node
