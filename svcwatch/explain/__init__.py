"""What the evidence means, in words and numbers the panes show: pure, below the UI.

`diagnosis` turns the stream and the session's facts into the one-sentence diagnosis (the
dashboard's line, and `svcwatch run`'s `diagnosis` event); `chain_view` reads a ChainTree the way
the chain and slice panes present it, whichever kube-proxy mode wrote it. Neither imports Textual,
so every case is a plain unit test and a headless command can say the same as the dashboard.
"""
