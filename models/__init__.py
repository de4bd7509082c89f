"""Model code shared by training and serving: event schema, weights, fold-in, bundles.

Nothing here touches Redis or HTTP, so the offline jobs and the server compute exactly
the same things from the same inputs.
"""
