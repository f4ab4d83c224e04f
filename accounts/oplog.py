def operation_log_view(request):
    raise NotImplementedError
