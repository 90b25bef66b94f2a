"""The RadioCore board agent: the process at the station, next to the rig.

It connects outbound to the RadioCore server (Socket.IO signaling, one WebRTC peer connection),
sends the receiver's audio as Opus, plays the floor holder's voice into the transmitter, applies
control messages to the rig and reports its status. Of the rest of the project it imports only
`radiocore_protocol`, the wire protocol, and `radiocore.configlayers`, the config loader.
"""
