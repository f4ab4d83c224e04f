from accounts.selectors import branding_for, branding_for_user


def branding(request):
    """The header title and logo for pages outside the admin (login, API docs, ...)."""
    user = getattr(request, "user", None)
    if user is not None and user.is_authenticated:
        return {"branding": branding_for_user(user)}
    return {"branding": branding_for(None)}
