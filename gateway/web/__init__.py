"""The admin web console: server-rendered Starlette + Jinja2 over the review service.

:func:`gateway.web.app.create_app` builds the application; it reads and changes
data only through :class:`gateway.admin.service.ReviewService` (and the policy
holder for the policy view). See ``docs/console.md``.
"""
