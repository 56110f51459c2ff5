"""Pure types: Services, EndpointSlices, scenarios and stream events. No I/O, no root."""
