"""The model families, one module each: a spec table close to the paper's and one
builder, whose models register themselves with :func:`tfresnet.models.registry.register`.
The registry imports every module here; a new family is a new module, nothing else."""
