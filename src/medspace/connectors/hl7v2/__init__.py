"""HL7 v2 connector: ADT^A01/A04/A08 and ORU^R01 messages -> model records."""

from medspace.connectors.hl7v2._map import SUPPORTED, map_message
from medspace.connectors.hl7v2._parse import Delimiters, Message, Segment, parse_message, unescape
from medspace.connectors.hl7v2.reader import Hl7v2Connector

__all__ = [
    "SUPPORTED",
    "Delimiters",
    "Hl7v2Connector",
    "Message",
    "Segment",
    "map_message",
    "parse_message",
    "unescape",
]
