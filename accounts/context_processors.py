from accounts.selectors import branding_for_user


def branding(request):
    """The header title and logo for every page (platform default before login)."""
    return {"branding": branding_for_user(getattr(request, "user", None))}
